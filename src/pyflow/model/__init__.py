"""The model layer: nodespecs, flows, ports, bundles and their JSON Schema validation.

Depends only on the standard library and jsonschema. Node code is parsed and compiled here, never run. Import the submodules themselves (`model.flow`,
`model.nodespec`, ...): the package imports none of them, so that what needs only the errors (the
command line talking to a server, say) does not load jsonschema.
"""
