"""Schemathesis hooks for the API suite (loaded through `hooks` in schemathesis.toml).

Each filter drops generated requests that would test something other than the documented contract,
and says why."""

import schemathesis


@schemathesis.hook("filter_case")
def not_the_palette_tree(context, case) -> bool:
    """GET /api/nodespecs/tree is the palette tree, not the nodespec "tree": the document excludes that id
    from GET /api/nodespecs/{nodespec_id}, and a negative case that sends it anyway reaches the tree."""
    if case.operation.method.upper() == "GET" and case.operation.path == "/api/nodespecs/{nodespec_id}":
        return (case.path_parameters or {}).get("nodespec_id") != "tree"
    return True
