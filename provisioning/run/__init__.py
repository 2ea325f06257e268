"""Running a plan against Graph: the plan, creates, updates and follow-ups, the journal that makes a run resumable,
the run folder, its lock and tenant binding, and the passwords file. Never imports the report."""
