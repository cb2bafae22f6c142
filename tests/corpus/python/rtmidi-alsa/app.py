"""python-rtmidi's manylinux wheel links the system's ALSA library (libasound.so.2), which
the manylinux policy leaves to the machine; JACK's is vendored in python_rtmidi.libs."""

import rtmidi

apis = [rtmidi.get_api_name(api) for api in rtmidi.get_compiled_api()]
print(f"python-rtmidi {rtmidi.__version__} compiled APIs {apis}")
