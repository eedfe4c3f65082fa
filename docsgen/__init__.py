"""Generated pages of the documentation site: the configuration reference
(from ``eventdock.config.Settings``) and the command-line reference (from the
CLI's own help). ``python -m docsgen`` writes them; ``--check`` fails when a
page is out of date, or a setting has no description."""
