"""Files in and out: uploads, PNG/HTML export, trace export. Imports core and lab."""
