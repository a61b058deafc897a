"""The checks run on a record: the pytest session, the plugin, the hints. Check
authors import `grader.check_api` only."""
