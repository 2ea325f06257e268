"""What a run hands back: the report rows, results.csv, summary.json, results.xlsx and the notification mail.
Built from the journal; never reads a roster file."""
