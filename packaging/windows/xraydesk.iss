; Inno Setup 6 script: the Windows installer for XRayDesk.
;
; Built by `python packaging\build.py` after PyInstaller and the self-test, as
;   iscc /DAppVersion=0.1.0 [/DFlavour=-cpu|-light] [/DSourceDir=dist\XRayDesk-light] [/DSetupIcon=build\xraydesk.ico] packaging\windows\xraydesk.iss
; It packs dist\XRayDesk\ (the one-folder build) into dist\XRayDesk-VERSION-windows-x64-setup.exe.
; The version is passed in by build.py, which reads it from the package metadata: it is
; never written here.
;
; Uninstalling removes the program only: the per-user data folder
; (%LOCALAPPDATA%\XRayDesk: fine-tuned models, results, settings) is the user's and stays.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z packaging\windows\xraydesk.iss (build.py does)
#endif
#ifndef Flavour
  #define Flavour ""
#endif
; The one-folder build to pack: dist\XRayDesk\, or dist\XRayDesk-light\ for the light build
; (build.py passes /DSourceDir=... and /DFlavour=-light). Both targets install as the same
; product (one AppId): installing one over the other replaces it.
#ifndef SourceDir
  #define SourceDir "..\..\dist\XRayDesk"
#endif

[Setup]
; AppId identifies the product across versions (upgrades replace, never duplicate): never change it
AppId={{6C2E8F0A-3D1B-4E59-9A7C-2F4B8D1E5A93}
AppName=XRayDesk
AppVersion={#AppVersion}
AppVerName=XRayDesk {#AppVersion}
AppPublisher=XRayDesk
AppComments=Chest X-ray viewer with class probabilities and Grad-CAM; runs entirely on this computer.
VersionInfoVersion={#AppVersion}
DefaultDirName={autopf}\XRayDesk
DefaultGroupName=XRayDesk
DisableProgramGroupPage=yes
; per-machine by default, per-user (no administrator) when chosen in the dialog
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\dist
OutputBaseFilename=XRayDesk-{#AppVersion}{#Flavour}-windows-x64-setup
UninstallDisplayIcon={app}\XRayDesk.exe
UninstallDisplayName=XRayDesk {#AppVersion}
#ifdef SetupIcon
SetupIconFile={#SetupIcon}
#endif
WizardStyle=modern
; torch's libraries are large and already dense: LZMA2 without solid compression keeps
; the build to minutes and memory bounded.
Compression=lzma2
SolidCompression=no
LZMANumBlockThreads=4
; A build with a CUDA torch exceeds what one setup .exe may hold: uncomment to split it.
;DiskSpanning=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "dicomassoc"; Description: "Offer XRayDesk in ""Open with"" for DICOM files (.dcm)"; GroupDescription: "File types:"

[InstallDelete]
; an upgrade must not keep libraries of the previous version beside the new ones
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\XRayDesk"; Filename: "{app}\XRayDesk.exe"
Name: "{autodesktop}\XRayDesk"; Filename: "{app}\XRayDesk.exe"; Tasks: desktopicon

[Registry]
Root: HKA; Subkey: "Software\Classes\XRayDesk.Radiograph"; ValueType: string; ValueName: ""; ValueData: "Radiograph (DICOM)"; Flags: uninsdeletekey; Tasks: dicomassoc
Root: HKA; Subkey: "Software\Classes\XRayDesk.Radiograph\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\XRayDesk.exe,0"; Tasks: dicomassoc
Root: HKA; Subkey: "Software\Classes\XRayDesk.Radiograph\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\XRayDesk.exe"" ""%1"""; Tasks: dicomassoc
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "XRayDesk.Radiograph"; ValueData: ""; Flags: uninsdeletevalue; Tasks: dicomassoc

[Run]
Filename: "{app}\XRayDesk.exe"; Description: "{cm:LaunchProgram,XRayDesk}"; Flags: nowait postinstall skipifsilent
