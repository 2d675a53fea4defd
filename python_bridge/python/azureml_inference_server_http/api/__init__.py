"""Public API for score scripts: AMLRequest, rawhttp and AMLResponse."""
