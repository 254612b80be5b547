# What the pacs role needs to know about an Orthanc image, printed as key=value lines. It runs in a
# throw-away container of the image (no network, no volume, the user that will run Orthanc):
#   docker run --rm -i --network none --user 4242:4242 --entrypoint sh IMAGE -s -- PLUGIN... < this file
# PLUGIN is a plugin file name, looked up in the plugin folders of the supported layouts (first match wins),
# or an absolute path, taken as it is. POSIX sh only: every supported image has it.
#   binary=/usr/local/bin/Orthanc      the Orthanc server (on PATH, or a known place)
#   version=Orthanc 1.13.0             first line of `Orthanc --version`
#   bash=/usr/bin/bash                 the shell the health check needs (absent: no line)
#   plugin=/usr/share/orthanc/plugins-available/libOrthancDicomWeb.so
#   missing=libOrthancFoo.so           not found, or not readable by this user
binary=$(command -v Orthanc 2>/dev/null || true)
if [ -z "$binary" ]; then
  for candidate in /usr/local/bin/Orthanc /usr/local/sbin/Orthanc /usr/sbin/Orthanc /usr/bin/Orthanc; do
    if [ -x "$candidate" ]; then binary=$candidate; break; fi
  done
fi
echo "binary=$binary"
if [ -n "$binary" ]; then
  echo "version=$("$binary" --version 2>&1 | head -n 1)"
fi
if command -v bash >/dev/null 2>&1; then echo "bash=$(command -v bash)"; fi
# orthancteam/orthanc keeps its plugins in plugins-available (its entrypoint links the enabled ones into
# plugins, empty in the image); Debian's packages in plugins; jodogne/orthanc-plugins under /usr/local.
for name in "$@"; do
  found=
  case $name in
    /*) if [ -f "$name" ] && [ -r "$name" ]; then found=$name; fi ;;
    *)
      for dir in /usr/share/orthanc/plugins-available /usr/share/orthanc/plugins /usr/local/share/orthanc/plugins; do
        if [ -f "$dir/$name" ] && [ -r "$dir/$name" ]; then found=$dir/$name; break; fi
      done
      ;;
  esac
  if [ -n "$found" ]; then echo "plugin=$found"; else echo "missing=$name"; fi
done
