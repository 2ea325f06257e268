"""Validation and tenant pre-flight: every rule, the duplicate and tenant checks, generated passwords. Pure over a
roster and a read-only view of the tenant; nothing here writes to Graph or to a run folder."""
