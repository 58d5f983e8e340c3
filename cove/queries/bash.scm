; Definitions, references and sourced files in shell scripts.
(function_definition name: (word) @name) @definition.function
(program (variable_assignment name: (variable_name) @name) @definition.constant)
(command name: (command_name (word) @name)) @reference.call
((command name: (command_name (word) @_source)) @import (#match? @_source "^(source|\\.)$"))
