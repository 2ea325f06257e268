"""Everything that talks to Microsoft identity and Microsoft Graph: auth, HTTP, retry, $batch, paging, clouds.

This package knows nothing of rosters or of ``provisioning``. The entry point is :class:`graph.client.GraphClient`,
configured by a :class:`graph.config.GraphConfig`.
"""
