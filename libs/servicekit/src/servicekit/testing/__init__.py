"""The pytest plugin every service's tests use (loaded with `-p servicekit.testing.plugin`)."""
