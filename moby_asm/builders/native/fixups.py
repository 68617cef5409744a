"""The changes LinuxKit makes to every image it unpacks (init images, bundles and volumes).

Facts from LinuxKit's `ImageTar` (src/cmd/linuxkit/moby/build/image.go, v1.x): it drops
files that `docker export` adds, writes fixed `/etc/hosts` and `/etc/resolv.conf`, and
makes sure a few paths exist, giving those the fixed modification time. Init images get
`/etc/resolv.conf` as a symlink into /run, which is writable at boot.
"""

from __future__ import annotations

from moby_asm.builders.native.entries import FIXED_MTIME, Origin, directory, regular_file, symlink
from moby_asm.builders.native.tree import FileTree

EXCLUDED = (".dockerenv", "Dockerfile", "dev/console", "etc/hostname")

HOSTS = b"""127.0.0.1       localhost
::1     localhost ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""

NO_RESOLV_CONF = b"\n# no resolv.conf configured\n"

INIT_RESOLV_CONF = "/run/resolvconf/resolv.conf"
"""Target of an init image's /etc/resolv.conf symlink, because /etc is read-only at boot."""

REQUIRED_DIRECTORIES = ("dev", "dev/pts", "dev/shm", "etc", "proc", "sys")


def apply_image_fixups(tree: FileTree, origin: Origin, *, resolv_conf_symlink: str | None = None) -> None:
    """Apply LinuxKit's changes to the tree of one unpacked image, in LinuxKit's order.

    Required paths that the image lacks are added in sorted order, after its own entries.
    """
    for path in EXCLUDED:
        tree.remove(path)
    for path in ("etc/hosts", "etc/resolv.conf"):
        tree.remove(path)
    for path in sorted((*REQUIRED_DIRECTORIES, "etc/hosts", "etc/mtab", "etc/resolv.conf")):
        _ensure(tree, path, origin, resolv_conf_symlink)


def _ensure(tree: FileTree, path: str, origin: Origin, resolv_conf_symlink: str | None) -> None:
    existing = tree.get(path)
    if path in REQUIRED_DIRECTORIES:
        if existing is not None and existing.is_directory and not existing.implicit:
            existing.mtime = FIXED_MTIME
        else:
            tree.add(directory(path, origin))
    elif path == "etc/mtab":
        if existing is not None:
            existing.mtime = FIXED_MTIME
        else:
            tree.add(symlink(path, "/proc/mounts", origin, mode=0o755))
    elif path == "etc/hosts":
        tree.add(regular_file(path, HOSTS, origin))
    elif resolv_conf_symlink:
        tree.add(symlink(path, resolv_conf_symlink, origin, mode=0o644))
    else:
        tree.add(regular_file(path, NO_RESOLV_CONF, origin))
