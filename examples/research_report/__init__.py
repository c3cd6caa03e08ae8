"""The research-report example: a researcher, a writer and three reviewers (``omium demo``)."""
