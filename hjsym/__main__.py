from hjsym._cli import entry

entry()
