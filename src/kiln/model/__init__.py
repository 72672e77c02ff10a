"""The asset model: ISA-95 equipment hierarchy, asset types as templates, and tags."""
