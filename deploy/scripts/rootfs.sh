# Root filesystems for locally built container images (no image registry is reachable here):
# sourced by compose-live.sh (docker import) and k8s-live.sh (image-archive.py + ctr import).
# shellcheck shell=bash

# rootfs DIR BIN...: copy binaries and the shared libraries they load into DIR.
add_bins() {
	local dir=$1 dest=$2
	shift 2
	mkdir -p "$dir$dest"
	for b in "$@"; do
		cp -L "$b" "$dir$dest/"
		ldd "$b" 2>/dev/null | awk '/=> \// {print $3} /^\t\// {print $1}' | while read -r lib; do
			mkdir -p "$dir$(dirname "$lib")"
			cp -L "$lib" "$dir$lib"
		done
	done
}
add_busybox() {
	local dir=$1
	mkdir -p "$dir/bin"
	cp "$(command -v busybox)" "$dir/bin/busybox"
	for app in $(busybox --list); do [[ -e $dir/bin/$app ]] || ln -s busybox "$dir/bin/$app"; done
}
base_files() { # DIR UID:NAME...
	local dir=$1
	shift
	mkdir -p "$dir/etc" "$dir/tmp" "$dir/etc/ssl/certs"
	chmod 1777 "$dir/tmp"
	echo "root:x:0:0:root:/root:/sbin/nologin" >"$dir/etc/passwd"
	echo "root:x:0:" >"$dir/etc/group"
	for u in "$@"; do
		echo "${u#*:}:x:${u%%:*}:${u%%:*}:${u#*:}:/home/${u#*:}:/sbin/nologin" >>"$dir/etc/passwd"
		echo "${u#*:}:x:${u%%:*}:" >>"$dir/etc/group"
	done
	cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
}
