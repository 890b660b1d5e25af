"""How the rows become bureau files: agreed layouts, messy shapes, the national roster export."""
