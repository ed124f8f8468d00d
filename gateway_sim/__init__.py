"""Loopback simulator of the ProjectX Gateway (TopstepX) that the unchanged project-x-py SDK connects to."""
