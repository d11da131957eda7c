"""Library layer behind the commands: functions the CLI and the demo both call.

``tad.apis.detect.run_detect`` (raw videos -> segments), ``tad.apis.timelines.render_timelines``
(timeline PNGs), ``tad.apis.stream.run_stream`` (online detection on a live source). CLI
modules only parse flags and print; nothing here imports ``tad.cli``.
"""
