"""The `moby-asm` command: parse arguments, call the library, print results."""
