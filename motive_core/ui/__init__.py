"""What the app shows and keeps: display data, saved reviews, the file-serving guard and capped folders.

Front-end code beside ``app.py``; the engine never imports it.
"""
