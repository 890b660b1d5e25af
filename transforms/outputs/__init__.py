"""What people read: receipts, township workbooks, the run report, summaries."""
