"""Components made from Debian packages: mirrors, verified indexes, resolution and image layers."""
