"""The steps the DAG calls, in the order it calls them."""
