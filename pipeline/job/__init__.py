"""Running a job: options, runner choice, GCS set-up, progress, run and summary."""
