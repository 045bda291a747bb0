//go:build !unix

package keyfile

import "io/fs"

func inode(fs.FileInfo) string { return "" }
