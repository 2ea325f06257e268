"""The batch job's domain: roster -> validated rows -> plan -> apply -> report.

Imports flow one way: ``provision.py -> provisioning -> graph``. Nothing here prints; command modules write to
the streams they are given, library modules log.
"""
