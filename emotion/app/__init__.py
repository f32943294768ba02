"""The web app's glue: everything the Streamlit pages need that is not a widget.

`ui` (Streamlit helpers: the cached recognizer, the data-source picker, settings), `jobs`
(training runs in a background process), `uploads` (uploaded data files), `formatting` (tables,
charts and sentences the pages show) and `webrtc` (the streamlit-webrtc adapter: ICE servers,
the frames callback, the stats file the browser test reads).

The library around it (`emotion.recognizer`, `emotion.live`, `emotion.training`, ...) never imports
this package, and works without Streamlit installed.
"""
