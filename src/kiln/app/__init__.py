"""The composition root: the plant file's settings, the platform and app built from the installed
subsystems, and the `kiln` command. The top layer: it may import every other, none imports it."""
