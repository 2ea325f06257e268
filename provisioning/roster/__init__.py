"""Reading roster files: CSV and Excel into a :class:`~provisioning.models.Roster`, the field mapping, the naming
templates (derive) and the one way two names compare (identity). Nothing here applies a rule or talks to Graph."""
