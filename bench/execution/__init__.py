"""The run machinery: plan, session, the case runner and the ranks of a job."""
