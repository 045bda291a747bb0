//go:build unix

package keyfile

import (
	"io/fs"
	"strconv"
	"syscall"
)

func inode(fi fs.FileInfo) string {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return strconv.FormatUint(st.Ino, 10)
	}
	return ""
}
