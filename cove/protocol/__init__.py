"""The daemon's protocol, shared by both ends: framing with its limits and version (`framing`), one strict converter
(`codec`), the typed params of every method (`params`) and the typed events of agent runs (`events`).
docs/protocol.md describes it for clients written in other languages."""
