# See dmp/formats/ar/formats.py: a numeric date and time shown as one left-to-right fragment.
SHORT_DATETIME_FORMAT = "Y/n/j H:i"
