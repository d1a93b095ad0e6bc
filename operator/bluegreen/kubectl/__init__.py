"""`kubectl bluegreen`: the plugin, its output formats and the switch graph."""
