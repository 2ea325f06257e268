"""The run folder and what it keeps: its file names (:class:`~provisioning.store.folder.RunFolder`), the journal
that makes a run resumable, the secrets files, the lock that keeps one process on it and the tenant it is bound to.
Imports only the leaf modules, so that the run, the report, the API and the watcher all stand on it."""
