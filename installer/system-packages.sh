#!/usr/bin/env bash
# Debian packages the tests and the screenshots need, installed only when missing:
#   xvfb + xauth      a virtual display for xvfb-run (screenshots, a display-less CI)
#   dicom3tools       dciodvfy, which checks the DICOM SR / Secondary Capture zsmed writes
#   tesseract-ocr     the OCR program that finds text burned into the pixels (zsmed find-text, --blank-found-text)
#   orthanc           a real PACS on this machine for the tests that send to one (zsmed send, zsmed echo)
#   libxcb-cursor0 …  what Qt's xcb platform plugin loads on a bare Linux box
# Needs root (CI runs as root); elsewhere it says what to install and carries on.
set -euo pipefail
packages=(xvfb xauth dicom3tools tesseract-ocr orthanc libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxkbcommon-x11-0 libegl1)
command -v dpkg-query >/dev/null 2>&1 || exit 0
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-packages: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
