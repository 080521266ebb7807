"""Tools for stacks built with the app-platform component library.

`offline` runs a Pulumi program under the SDK's mocks and records what it registers; `plan`,
`render` and `plandiff` print, dump and compare such recordings; `hosts` writes the /etc/hosts
line from a deployed stack's outputs. `secrets` is how all of them tell and hide secret values.

Nothing is imported here: `plandiff` and `secrets` run with the standard library alone.
"""
