"""Deployment flows, one file each, behind the interface in flows/base.py."""
