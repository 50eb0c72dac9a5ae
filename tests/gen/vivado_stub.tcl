# Stand-ins for the Vivado commands that ternforge's Tcl scripts call, for tclsh.
#
# Each command appends one line to the file $env(VIVADO_STUB_LOG): its name and arguments,
# separated by the unit separator (\x1f), backslashes and newlines escaped; and returns a
# plausible handle, so that a script runs to its end. A command that is not stubbed here
# stops the script (tclsh: "invalid command name").
#
# Environment:
#   VIVADO_STUB_FAIL         the runs that fail (e.g. "impl_1")
#   VIVADO_STUB_SLACK        the worst setup slack (default 0.125 ns; negative: impl_1 is
#                            "route_design Complete, Failed Timing!")
#   VIVADO_STUB_BOARD_PARTS  the installed board parts (default: kv260 1.4 and zcu104 1.1)

set ::stub_log [open $::env(VIVADO_STUB_LOG) w]
set ::stub_fail [expr {[info exists ::env(VIVADO_STUB_FAIL)] ? $::env(VIVADO_STUB_FAIL) : ""}]
set ::stub_slack [expr {[info exists ::env(VIVADO_STUB_SLACK)] ? $::env(VIVADO_STUB_SLACK)
                                                                : 0.125}]
set ::stub_board_parts [expr {[info exists ::env(VIVADO_STUB_BOARD_PARTS)]
    ? $::env(VIVADO_STUB_BOARD_PARTS)
    : "xilinx.com:kv260_som:part0:1.4 xilinx.com:zcu104:part0:1.1"}]

proc stub_record {name arguments} {
    set fields {}
    foreach field [list $name {*}$arguments] {
        lappend fields [string map [list \\ \\\\ \n \\n] $field]
    }
    puts $::stub_log [join $fields \x1f]
    flush $::stub_log
}

namespace eval ipx {}

# Define each command: it records its call, then runs body (with its arguments in args).
proc stub {name {body {return ""}}} {
    proc $name args "stub_record [list $name] \$args\n$body"
}

# the last argument that is not an option (or an option's value)
proc stub_object {arguments} {
    return [lindex $arguments end]
}

foreach name {
    add_files update_compile_order launch_runs wait_on_run open_run report_utilization
    report_timing_summary report_power close_project update_ip_catalog apply_bd_automation
    connect_bd_intf_net connect_bd_net assign_bd_address validate_bd_design save_bd_design
    make_wrapper write_hw_platform create_bd_design
    ipx::package_project ipx::remove_bus_interface ipx::remove_memory_map
    ipx::remove_address_space ipx::create_xgui_files ipx::update_checksums
    ipx::check_integrity ipx::save_core
} {
    stub $name
}

stub set_property
stub create_project {return [lindex $args 0]}
stub current_project {return project}
stub current_fileset {return sources_1}
stub get_filesets {return [stub_object $args]}
stub get_files {return /project/[stub_object $args]}
stub get_runs {return [stub_object $args]}
stub get_ports {return port:[stub_object $args]}
stub get_timing_paths {return timing_path}
stub get_board_parts {
    set parts [lsearch -all -inline -glob $::stub_board_parts [stub_object $args]]
    if {"-latest_file_version" in $args} {
        return [lindex [lsort -dictionary $parts] end]
    }
    return $parts
}
stub get_property {
    lassign $args property object
    set failed [expr {$object in $::stub_fail}]
    switch -- $property {
        STATUS {
            if {$failed} { return "$object ERROR" }
            if {$object eq "synth_1"} { return "synth_design Complete!" }
            if {$::stub_slack < 0} { return "route_design Complete, Failed Timing!" }
            return "route_design Complete!"
        }
        PROGRESS { return [expr {$failed ? "0%" : "100%"}] }
        DIRECTORY { return /project/runs/$object }
        SLACK { return $::stub_slack }
        NAME { return [lindex [split $object :] end] }
        CONFIG.PSU__CRL_APB__PL0_REF_CTRL__ACT_FREQMHZ { return 249.997498 }
        CONFIG.FREQ_HZ { return 179998200 }
        default { error "stub get_property: unknown property $property" }
    }
}

# the IP packager: the interfaces it infers, which the script replaces
stub ipx::current_core {return core}
stub ipx::get_bus_interfaces {return {bus:m_axi0 bus:clk}}
stub ipx::get_memory_maps {return {memory:s_axil}}
stub ipx::get_address_spaces {return {space:m_axi0}}
stub ipx::add_bus_interface {return bus:[lindex $args 0]}
stub ipx::add_port_map {return port_map:[lindex $args 1]:[lindex $args 0]}
stub ipx::add_bus_parameter {return parameter:[lindex $args 1]:[lindex $args 0]}
stub ipx::add_address_space {return space:[lindex $args 0]}
stub ipx::add_memory_map {return memory:[lindex $args 0]}
stub ipx::add_address_block {return block:[lindex $args 0]}

# the block design
stub create_bd_cell {return /[stub_object $args]}
stub get_bd_cells {return /[stub_object $args]}
stub get_bd_pins {return /[stub_object $args]}
stub get_bd_intf_pins {return /[stub_object $args]}
