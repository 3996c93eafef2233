"""The `assistant` command's subcommands that admins run against a deployment, one module each.

assistant.cli is the root group and registers them; shared option handling is in .common.
"""
