"""`gateway diff`: the effective routing change between two configs, not the change of their text.

sides.py     load a side as `serve` does (directory, file, or a path in a git revision extracted to a
             temporary directory), unset `${VAR}`s as placeholders; where each value was written
flatten.py   config objects -> flat `{field: value}` maps, generic over dataclass fields; secrets
             as digests, URL credentials split off
snapshot.py  per model name its route and target chain per inbound API; per route its effective
             policy (as `gateway explain`); providers, keys, prices, settings
compare.py   two snapshots -> changes (with both places) and moves to another file
render.py    text, JSON (schema 1) and Markdown
"""
