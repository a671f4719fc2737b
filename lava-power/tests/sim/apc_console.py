#!/usr/bin/env python3
"""An APC Switched Rack PDU's telnet Control Console (AP79xx, AOS 3.x menu layout), on 127.0.0.1 and
a free port; prints "READY <port>" once it listens.

usage: apc_console.py LOG_FILE [--outlets N] [--user U] [--password P] [--firmware aos3|aos2]

It speaks telnet like the device: offers WILL ECHO, WILL SGA and asks DO NAWS on connect, refuses
options it does not know, strips commands from the data, echoes what is typed (the password as *),
treats CR NUL / CR LF / LF as ENTER and ESC as "back". It greets with "User Name : ", allows one
session at a time, keeps the outlets' state, and logs to LOG_FILE, one line each:
  connect / telnet <DO|DONT|WILL|WONT> <option> / login <user> / login-failed <user> /
  outlet <N> <on|off|reboot> / logout / disconnect
--firmware aos2 numbers the menus differently (Device Manager lists "Outlet Control/Configuration"
first, no Outlet Management level), as older firmware does: drivers must navigate by menu text.
--firmware cli answers the login with the `apc>` command line of AOS 6 (AP86xx/AP89xx): olOn N,
olOff N, olReboot N, olStatus N|all, exit; "E000: Success", "E102: Parameter Error",
"E101: Command Not Found".
"""

import argparse
import asyncio
import datetime

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, SGA, NAWS = 1, 3, 31
NAMES = {0: "BINARY", 1: "ECHO", 3: "SGA", 24: "TTYPE", 31: "NAWS", 34: "LINEMODE", 44: "COM-PORT"}
VERBS = {DO: "DO", DONT: "DONT", WILL: "WILL", WONT: "WONT"}
ESC = "\x1b"
LINE = "-" * 79

args = None
outlets = {}
busy = False


def log(text):
    with open(args.log, "a") as f:
        f.write(text + "\n")


def header(title):
    t = "------- %s " % title
    return "\r\n" + t + "-" * max(3, 79 - len(t)) + "\r\n\r\n"


def menu(title, items, info="", back=True):
    text = header(title) + info
    for key, label in items:
        text += "     %s- %s\r\n" % (key, label)
    nav = "<ESC>- Back" if back else "<ESC>- Main Menu"
    text += "\r\n     %s, <ENTER>- Refresh, <CTRL-L>- Event Log\r\n> " % nav
    return text


class Console:
    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.echo_mask = False
        self.pending = bytearray()
        self.negotiated = {}
        self.stack = []

    # ---- telnet ----
    def send(self, text):
        self.writer.write(text.replace("\xff", "\xff\xff").encode("latin-1"))

    async def negotiate(self):
        self.writer.write(bytes([IAC, WILL, ECHO, IAC, WILL, SGA, IAC, DO, NAWS]))
        self.asked = {(WILL, ECHO), (WILL, SGA), (DO, NAWS)}
        await self.writer.drain()

    def command(self, verb, opt):
        log("telnet %s %s" % (VERBS[verb], NAMES.get(opt, str(opt))))
        # Answers to our own requests need no reply (RFC 1143); anything else is refused.
        if verb in (DO, DONT) and (WILL, opt) in self.asked:
            self.asked.discard((WILL, opt))
            return
        if verb in (WILL, WONT) and (DO, opt) in self.asked:
            self.asked.discard((DO, opt))
            return
        if verb == DO:
            self.writer.write(bytes([IAC, WONT, opt]))
        elif verb == WILL:
            self.writer.write(bytes([IAC, DONT, opt]))

    async def byte(self):
        if self.pending:
            b = bytes(self.pending[:1])
            del self.pending[:1]
            return b
        return await self.reader.read(1)

    async def key(self):
        """The next data byte as a character, None at EOF."""
        while True:
            b = await self.byte()
            if not b:
                return None
            c = b[0]
            if c != IAC:
                return chr(c)
            b = await self.byte()
            if not b:
                return None
            c = b[0]
            if c == IAC:
                return "\xff"
            if c in VERBS:
                o = await self.byte()
                if not o:
                    return None
                self.command(c, o[0])
            elif c == SB:
                prev = 0
                while True:
                    x = await self.byte()
                    if not x:
                        return None
                    if prev == IAC and x[0] == SE:
                        break
                    prev = x[0]

    async def line(self, mask=False):
        """A line of input (ESC alone returns ESC), echoed as the device does."""
        text = ""
        while True:
            k = await self.key()
            if k is None:
                return None
            if k == ESC:
                return ESC
            if k in "\r\n":
                if k == "\r":
                    # CR NUL or CR LF: swallow the second byte if it is there.
                    try:
                        nxt = await asyncio.wait_for(self.byte(), 0.05)
                    except asyncio.TimeoutError:
                        nxt = b""
                    if nxt not in (b"\0", b"\n", b""):
                        self.pending[0:0] = nxt  # not part of this ENTER: keep it
                self.send("\r\n")
                await self.writer.drain()
                return text
            if k in "\x08\x7f":
                if text:
                    text = text[:-1]
                    self.send("\x08 \x08")
                continue
            if k == "\0":
                continue
            text += k
            self.send("*" if mask else k)
            await self.writer.drain()

    # ---- screens ----
    def main_menu(self):
        now = datetime.datetime.now()
        info = (
            "\r\nAmerican Power Conversion               Network Management Card AOS      v3.7.3\r\n"
            "(c) Copyright 2009 All Rights Reserved  Rack PDU APP                     v3.7.3\r\n"
            + LINE + "\r\n"
            "Name      : RackPDU                                   Date : %s\r\n"
            "Contact   : Unknown                                   Time : %s\r\n"
            "Location  : Unknown                                   User : Administrator\r\n"
            "Up Time   : 0 Days 2 Hours 13 Minutes                 Stat : P+ N+ A+\r\n\r\n"
            "Switched Rack PDU: Communication Established\r\n"
        ) % (now.strftime("%m/%d/%Y"), now.strftime("%H:%M:%S"))
        return info + menu("Control Console", [("1", "Device Manager"), ("2", "Network"),
                                               ("3", "System"), ("4", "Logout")], back=False)

    def device_manager(self):
        if args.firmware == "aos2":
            return menu("Device Manager", [("1", "Outlet Control/Configuration"),
                                           ("2", "Power Supply Status")])
        return menu("Device Manager", [("1", "Phase Management"), ("2", "Outlet Management"),
                                       ("3", "Power Supply Status")])

    def outlet_management(self):
        return menu("Outlet Management", [("1", "Outlet Control/Configuration"),
                                          ("2", "Outlet Restriction")])

    def outlet_list(self):
        items = [(str(n), "%-24s %s" % ("Outlet %d" % n, "ON" if outlets[n] else "OFF"))
                 for n in sorted(outlets)]
        items.append((str(len(outlets) + 1), "Master Control/Configuration"))
        return menu("Outlet Control/Configuration", items)

    def outlet_info(self, n):
        return ("        Name         : Outlet %d\r\n"
                "        Outlet       : %d\r\n"
                "        State        : %s\r\n\r\n") % (n, n, "ON" if outlets[n] else "OFF")

    def outlet_screen(self, n):
        return menu("Outlet %d" % n, [("1", "Control Outlet"), ("2", "Configure Outlet")],
                    self.outlet_info(n)).replace("<ESC>- Back", "?- Help, <ESC>- Back")

    def control_screen(self, n):
        return menu("Control Outlet", [("1", "Immediate On"), ("2", "Immediate Off"),
                                       ("3", "Immediate Reboot"), ("4", "Delayed On"),
                                       ("5", "Delayed Off"), ("6", "Delayed Reboot"),
                                       ("7", "Cancel")],
                    self.outlet_info(n)).replace("<ESC>- Back", "?- Help, <ESC>- Back")

    async def run(self):
        global busy
        log("connect")
        await self.negotiate()
        if busy:
            # Like the NMC: one console session at a time.
            self.send("\r\nAnother user is currently logged in.\r\n")
            await self.writer.drain()
            return
        busy = True
        try:
            await self.session()
        finally:
            busy = False

    async def session(self):
        for _ in range(3):
            self.send("\r\nUser Name : ")
            await self.writer.drain()
            user = await self.line()
            if user is None:
                return
            if user in ("", ESC):
                continue
            self.send("Password  : ")
            await self.writer.drain()
            password = await self.line(mask=True)
            if password is None:
                return
            if user == args.user and password == args.password:
                log("login %s" % user)
                break
            log("login-failed %s" % user)
        else:
            return
        if args.firmware == "cli":
            await self.command_line()
            return
        screen = "main"
        outlet = None
        while True:
            draw = {
                "main": self.main_menu,
                "device": self.device_manager,
                "mgmt": self.outlet_management,
                "list": self.outlet_list,
                "outlet": lambda: self.outlet_screen(outlet),
                "control": lambda: self.control_screen(outlet),
            }[screen]
            self.send(draw())
            await self.writer.drain()
            choice = await self.line()
            if choice is None:
                return
            parent = {"main": "main", "device": "main", "mgmt": "device",
                      "list": "device" if args.firmware == "aos2" else "mgmt",
                      "outlet": "list", "control": "outlet"}
            if choice == ESC:
                screen = parent[screen]
                continue
            if choice == "":
                continue
            if screen == "main":
                if choice == "1":
                    screen = "device"
                elif choice == "4":
                    self.send("\r\nConnection Closed - Bye\r\n")
                    await self.writer.drain()
                    log("logout")
                    return
            elif screen == "device":
                if args.firmware == "aos2" and choice == "1":
                    screen = "list"
                elif args.firmware != "aos2" and choice == "2":
                    screen = "mgmt"
            elif screen == "mgmt":
                if choice == "1":
                    screen = "list"
            elif screen == "list":
                if choice.isdigit() and int(choice) in outlets:
                    outlet = int(choice)
                    screen = "outlet"
            elif screen == "outlet":
                if choice == "1":
                    screen = "control"
            elif screen == "control":
                actions = {"1": ("Immediate On", "on"), "2": ("Immediate Off", "off"),
                           "3": ("Immediate Reboot", "reboot")}
                if choice not in actions:
                    continue
                title, action = actions[choice]
                self.send("\r\n        " + "-" * 71 + "\r\n        %s\r\n        " % title + "-" * 71 +
                          "\r\n\r\n        This command will %s the outlet named:\r\n"
                          "        'Outlet %d'\r\n\r\n"
                          "        Enter 'YES' to continue or <ENTER> to cancel : "
                          % ({"on": "immediately turn on", "off": "immediately turn off",
                              "reboot": "immediately reboot"}[action], outlet))
                await self.writer.drain()
                answer = await self.line()
                if answer is None:
                    return
                if answer == "YES":
                    outlets[outlet] = action != "off"
                    log("outlet %d %s" % (outlet, action))
                    self.send("\r\n        Command successfully issued.\r\n\r\n")
                else:
                    self.send("\r\n        Command cancelled.\r\n\r\n")
                self.send("        Press <ENTER> to continue...")
                await self.writer.drain()
                if await self.line() is None:
                    return


    async def command_line(self):
        self.send("\r\n\r\nSchneider Electric                      Network Management Card AOS      v6.8.2\r\n"
                  "(c) Copyright 2019 All Rights Reserved  RPDU 2g APP                      v6.8.0\r\n"
                  + LINE + "\r\n"
                  "Name      : apcRPDU                                   Date : 11/27/2026\r\n"
                  "Stat      : P+ N4+ N6+ A+\r\n\r\n"
                  "Type ? for command listing\r\n"
                  "Use tcpip command for IP address(-i), subnet(-s), and gateway(-g)\r\n")
        while True:
            self.send("\r\napc>")
            await self.writer.drain()
            cmd = await self.line()
            if cmd is None:
                return
            words = cmd.split()
            if not words or cmd == ESC:
                continue
            verb = words[0].lower()
            if verb in ("exit", "quit", "bye"):
                self.send("\r\nBye.\r\n")
                await self.writer.drain()
                log("logout")
                return
            if verb not in ("olon", "oloff", "olreboot", "olstatus"):
                self.send("E101: Command Not Found\r\n")
                continue
            targets = list(outlets) if words[1:] == ["all"] else None
            if targets is None:
                if len(words) != 2 or not words[1].isdigit() or int(words[1]) not in outlets:
                    self.send("E102: Parameter Error\r\n")
                    continue
                targets = [int(words[1])]
            self.send("E000: Success\r\n")
            for n in targets:
                if verb == "olstatus":
                    self.send(" %d: Outlet %d: %s\r\n" % (n, n, "On" if outlets[n] else "Off"))
                else:
                    action = {"olon": "on", "oloff": "off", "olreboot": "reboot"}[verb]
                    outlets[n] = action != "off"
                    log("outlet %d %s" % (n, action))


async def handle(reader, writer):
    try:
        await Console(reader, writer).run()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        log("disconnect")
        writer.close()


async def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("log")
    p.add_argument("--outlets", type=int, default=8)
    p.add_argument("--user", default="apc")
    p.add_argument("--password", default="apc")
    p.add_argument("--firmware", default="aos3", choices=["aos3", "aos2", "cli"])
    args = p.parse_args()
    outlets.update({n: True for n in range(1, args.outlets + 1)})
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
