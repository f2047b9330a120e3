package squashfs

// HasXattrs reports whether any inode of the image has extended
// attributes: a server can then tell the kernel, once, that there are
// none to ask for.
func (im *Image) HasXattrs() bool { return im.xattrIDs > 0 }
