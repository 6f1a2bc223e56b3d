"""Stage 5, report: the document (JSON/YAML/table, contract version 1), metrics, and the alerts it raises."""
