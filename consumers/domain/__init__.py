"""The pure core: iSAMS record types, ISO lookups, mapping and plans. No I/O, no frameworks."""
