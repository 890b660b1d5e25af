"""Pure data logic of the county pipeline. Nothing in this package imports Airflow."""
