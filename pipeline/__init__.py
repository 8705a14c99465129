"""khabar's pipeline: Beam stages, graph assembly, running a job, commands (see README's Layout).

Importing it changes nothing: GCS emulator mode is installed explicitly (``job/gcs.py``).
"""
