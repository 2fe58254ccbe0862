@echo off
rem Install zsmed from this offline kit with no network at all (Windows): install.cmd [PREFIX]
rem The work is install.py's, run with Python @PYTHON_VERSION@, the version the kit's wheels are for: the py launcher
rem that python.org's installer adds, else a python on PATH (install.py refuses another version, saying so).
setlocal
set "KIT=%~dp0"
where py >nul 2>nul
if not errorlevel 1 (
  py -@PYTHON_VERSION@ -c "import sys" >nul 2>nul
  if not errorlevel 1 (
    py -@PYTHON_VERSION@ "%KIT%install.py" %*
    exit /b
  )
)
where python >nul 2>nul
if not errorlevel 1 (
  python "%KIT%install.py" %*
  exit /b
)
echo zsmed install: no Python @PYTHON_VERSION@ on this PC: install it from python.org first (64-bit) 1>&2
exit /b 1
