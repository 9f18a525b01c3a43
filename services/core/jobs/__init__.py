"""The job controller: job records, launching through a launcher, reconciling, schedules."""
