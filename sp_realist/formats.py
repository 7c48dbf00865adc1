"""The output formats of listings (no heavy imports: the command line's options need them at start-up)."""

FORMATS = ("table", "json", "csv", "md")
FORMATS_XLSX = FORMATS + ("xlsx",)
