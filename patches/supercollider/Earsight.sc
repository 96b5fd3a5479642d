// Earsight: talk to an earsight server from sclang.
//
//   ~ear = Earsight("127.0.0.1", 9000);         // where the server listens
//   ~ear.ping({ "server is there".postln });
//   ~ear.load(\crepe, { "listening with crepe".postln });
//   ~ear.notify;                                // streams and answers come to sclang (port 57120)
//   ~ear.stream(\pitch, 30, { |values| values.postln });   // [hz, confidence], 30 times a second
//   ~ear.bus(\pitch);                           // ... and on a control bus: In.kr(~ear.bus(\pitch).index)
//   ~ear.sendAt(0.5, '/ear/select', "conv6", 3); // a timetagged bundle, applied in 0.5 s
//   ~ear.sonify(\dream); ~ear.mix(0.5, 1);      // dream the selected neurons, hear it (\off stops)
//   ~ear.view(\features);                        // what the picture shows (view, snapshot, viewUrl)
//   ~ear.saveScene(\verse); ~ear.scene(\verse, 4); // every setting saved; recalled with a 4 s fade
//   ~ear.link; ~ear.scene(\chorus, 0, \bar);   // join Ableton Link; recall on the next bar
//   ~ear.free;
//
// Install: Quarks.install("/path/to/earsight/patches/supercollider"), then recompile the class library;
// Earsight.openHelpFile shows the help page (HelpSource/Classes/Earsight.schelp).
// See earsight-example.scd (an Ndef played by the pitch stream) and README.md.

Earsight {
	// addr: the server's NetAddr.
	// values: the latest values of each stream, by name (values[\pitch]).
	// buses: the control buses made by `bus`, by stream name.
	// defs: the OSCdefs of the streams turned on, by stream name.
	// answers: the OSCFuncs that warn of failures nobody asked for (freed by `free`).
	// timeout: seconds to wait for an answer before an action gets ok false.
	// verbose: post every /ear/done that arrives.
	// track: the server's track this client talks to (earsight serve --inputs N): its ear,
	// selection and streams; the server's other commands are the same for every track.
	var <addr, <values, <buses, <defs, <answers, <>timeout = 5, <>verbose = false, <track = 1;

	// A client of the server at `host` and `port` (where earsight serve listens), for `track`.
	*new { |host = "127.0.0.1", port = 9000, track = 1|
		^super.new.init(host, port, track)
	}

	init { |host, port, argTrack|
		track = argTrack.asInteger;
		addr = NetAddr(host, port);
		values = IdentityDictionary.new;
		buses = IdentityDictionary.new;
		defs = IdentityDictionary.new;
		// Answers nobody asked for (e.g. after a scheduled bundle): failures are worth a warning.
		answers = [
			OSCFunc({ |msg| if(verbose) { msg.postln } }, '/ear/done', addr).fix,
			OSCFunc({ |msg| ("earsight: % failed: %".format(msg[1], msg[2])).warn }, '/ear/fail', addr).fix,
		];
	}

	// The server's host name or address.
	host { ^addr.hostname }

	// The server's OSC port.
	port { ^addr.port }

	// ------------------------------------------------------------ sending

	// The address of a command on this client's track: for track 2, select goes with the track's
	// number after ear (the server's own commands, and every command of track 1, stay as they are).
	at { |address|
		address = address.asString;
		^if(track != 1 and: { this.class.trackCommands.includesEqual(address) }) {
			("/ear/" ++ track ++ address.drop(4)).asSymbol
		} { address.asSymbol }
	}

	// Where a stream of this client's track arrives: for track 2, the number comes after ear.
	streamAddress { |name|
		^(if(track == 1) { "/ear/" } { "/ear/" ++ track ++ "/" } ++ name).asSymbol
	}

	// Send one command now, with no answer awaited: ~ear.send('/ear/select', "conv6", 3).
	send { |address ... args|
		addr.sendMsg(this.at(address), *args)
	}

	// Send one command in a timetagged bundle, applied by the server `delta` seconds from now.
	sendAt { |delta, address ... args|
		addr.sendBundle(delta, [this.at(address)] ++ args)
	}

	// Several commands at the same time: ~ear.bundle(0.5, ['/ear/select', "conv6", 1], ['/ear/input/gain', 2]).
	bundle { |delta ... messages|
		addr.sendBundle(delta, *messages.collect { |m| [this.at(m[0])] ++ m.drop(1) })
	}

	// Send a command and call `action.(args, ok)` with its answer (its reply, /ear/done or /ear/fail).
	request { |address, args, action, reply|
		var funcs, done = false, finish;
		reply = (reply ?? { this.class.replyOf(address) }).asSymbol;
		address = this.at(address);
		finish = { |answer, ok|
			if(done.not) {
				done = true;
				funcs.do(_.free);
				action.value(answer, ok);
			}
		};
		funcs = [
			OSCFunc({ |msg|
				if(reply != '/ear/done' or: { msg[1] == address }) { finish.(msg.drop(1), true) }
			}, reply, addr),
			OSCFunc({ |msg|
				if(msg[1] == address) { finish.(msg.drop(1), false) }
			}, '/ear/fail', addr),
		];
		addr.sendMsg(address, *(args ? []));
		SystemClock.sched(timeout, {
			if(done.not) { finish.([address, "no answer within % s".format(timeout)], false) };
			nil
		});
	}

	// The same, waiting inside a Routine: returns [answer, ok].
	await { |address, args, reply|
		var cond = Condition.new, result;
		this.request(address, args, { |answer, ok| result = [answer, ok]; cond.test = true; cond.signal }, reply);
		cond.wait;
		^result
	}

	// ------------------------------------------------------------ commands

	// Is the server there? action.(ok).
	ping { |action| this.request('/ear/ping', [], { |answer, ok| action.value(ok) }) }

	// The server's state: action.(dictionary, ok) with \input, \latency_ms, \xruns, ...
	status { |action|
		this.request('/ear/status', [], { |answer, ok| action.value(this.class.pairs(answer), ok) })
	}

	// The loaded ear: action.(answer, ok), its name, rate, hop and layers.
	info { |action|
		this.request('/ear/model/info', [], { |answer, ok| action.value(answer, ok) })
	}

	// The ears the server can load: action.(names, ok).
	models { |action|
		this.request('/ear/model/list', [], { |answer, ok| action.value(answer, ok) })
	}

	// Load an ear by name (\crepe, \musicnn, \cpc or one you trained): action.(ok, answer).
	load { |name, action|
		var old = timeout;
		timeout = max(timeout, 60);  // building an ear can take a while
		this.request('/ear/model/load', [name.asString], { |answer, ok| action.value(ok, answer) });
		timeout = old;
	}

	// What the ear hears: ~ear.input(\test, \sine, 440), ~ear.input(\file, "song.wav"), ~ear.input(\device).
	input { |kind, name, value, action|
		var args = [kind.asString];
		name !? { args = args.add(if(name.isNumber) { name } { name.asString }) };
		value !? { args = args.add(value.asFloat) };
		this.request('/ear/input', args, { |answer, ok| action.value(ok, answer) })
	}

	// The neurons the act stream sends and the sonifier dreams: ~ear.select(\conv6, 0, 1, 2).
	select { |layer ... channels|
		this.send('/ear/select', layer.asString, *channels.flat.collect(_.asInteger))
	}

	// Subscribe sclang (its own port, unless another is given) to the streams; replies come there too.
	notify { |format = \list, bundle = 0, port|
		this.send('/ear/notify', (port ? NetAddr.langPort).asInteger, format.asString, bundle.asInteger)
	}

	// Stop the streams to sclang (or to `port`).
	unnotify { |port|
		this.send('/ear/notify/off', (port ? NetAddr.langPort).asInteger)
	}

	// Turn a stream on (rate frames per second; 0: off). Its values land in `values[name]`, on
	// `buses[name]` if one was made, and in `action.(values)` (an OSCdef you can also replace).
	stream { |name, rate = 30, action|
		name = name.asSymbol;
		this.on(name, action);
		this.send('/ear/stream', name.asString, rate.asFloat);
	}

	// The OSCdef of a stream: \earsight_<port>_<stream> (track 1), \earsight_<port>_<track>_<stream>.
	on { |name, action|
		var key = ("earsight_" ++ addr.port ++ "_" ++ if(track == 1) { "" } { track.asString ++ "_" } ++ name).asSymbol;
		name = name.asSymbol;
		defs[name] = OSCdef(key, { |msg|
			var v = msg.drop(1);
			values[name] = v;
			buses[name] !? { |bus| bus.setn(v.keep(bus.numChannels)) };
			action.value(v);
		}, this.streamAddress(name), addr);
		^defs[name]
	}

	// A control bus carrying a stream (allocated on `server`); pitch and level have 2 channels.
	bus { |name, numChannels, server|
		var known = this.class.streams[name.asSymbol] ? [];
		name = name.asSymbol;
		^buses[name] ?? {
			buses[name] = Bus.control(server ? Server.default, numChannels ? max(known.size, 1));
		}
	}

	// Turn a stream off and free its OSCdef.
	off { |name|
		this.send('/ear/stream', name.asString, 0);
		defs.removeAt(name.asSymbol) !? (_.free);
	}

	// Turn every stream off and free the OSCdefs and buses.
	free {
		defs.keysDo { |name| this.send('/ear/stream', name.asString, 0) };
		defs.do(_.free);
		defs.clear;
		buses.do(_.free);
		buses.clear;
		answers.do(_.free);
	}

	// ------------------------------------------------------------ sonification, output, picture
	// Each takes an optional `action.(ok, answer)`: ok is false when the server answered /ear/fail
	// (answer: [address, reason]) or nothing came within `timeout`.

	// Make audible what the selected neurons hear: \dream, \auralise or \off (see `mix`).
	sonify { |mode, action|
		this.request('/ear/sonify', [mode.asString], { |answer, ok| action.value(ok, answer) })
	}

	// One parameter of the sonification: ~ear.sonifyParam(\strength, 2). The value goes as the
	// type the command table gives it (Earsight.help lists the parameters and their ranges).
	sonifyParam { |name, value, action|
		var address = ("/ear/sonify/" ++ name).asSymbol;
		var row = this.class.commands.detect { |c| c[0].asSymbol == address };
		if(row.isNil or: { row[1].size != 1 }) {
			"earsight: % is not a sonify parameter".format(name).warn;
			^action.value(false, [address, "not a sonify parameter"])
		};
		value = switch(row[1][0], $s, { value.asString }, $i, { value.asInteger }, { value.asFloat });
		this.request(address, [value], { |answer, ok| action.value(ok, answer) })
	}

	// The sonifier's counters: action.(dictionary, ok) with \mode, \steps_per_second, ...
	sonifyStatus { |action|
		this.request('/ear/sonify/status', [], { |answer, ok| action.value(this.class.pairs(answer), ok) })
	}

	// Render the sonification of the last `seconds` of input to a .wav or .flac file (a relative
	// name lands in the server's cache, renders/); answer: [address, path] once it is written.
	render { |seconds, name, overwrite = false, action|
		var old = timeout;
		timeout = max(timeout, 600);  // an offline render optimises for as long as it takes
		this.request('/ear/sonify/render', [seconds.asFloat, name.asString, if(overwrite == true or: { overwrite == 1 }) { 1 } { 0 }],
			{ |answer, ok| action.value(ok, answer) });
		timeout = old;
	}

	// Output levels of the server: the input passed through (dry) and the sonification (wet), 0-4.
	mix { |dry = 1, wet = 1, action|
		this.request('/ear/output/mix', [dry.asFloat, wet.asFloat], { |answer, ok| action.value(ok, answer) })
	}

	// Fit the embed stream on the coming `seconds` (PCA of `layer`, `dims` values 0-1); answer:
	// [address, layer, dims] once fitted.
	fitEmbed { |layer, seconds = 10, dims = 10, action|
		var old = timeout;
		timeout = max(timeout, seconds + 30);
		this.request('/ear/embed/fit', [layer.asString, seconds.asFloat, dims.asInteger], { |answer, ok| action.value(ok, answer) });
		timeout = old;
	}

	// What the picture shows: \layout, \hallucination or \features. The picture commands need the
	// server's view (on unless it runs with --no-view): without it they fail with "no view: ...".
	view { |name, action|
		this.request('/ear/view', [name.asString], { |answer, ok| action.value(ok, answer) })
	}

	// Draw now and save a PNG (a relative name lands in the cache, snapshots/); answer: [address, path].
	snapshot { |name, action|
		this.request('/ear/view/snapshot', name !? { [name.asString] } ? [], { |answer, ok| action.value(ok, answer) })
	}

	// The address of the web page with the live picture: action.(url, ok).
	viewUrl { |action|
		this.request('/ear/view/url', [], { |answer, ok| action.value(if(ok) { answer[0].asString } { nil }, ok) })
	}

	// ------------------------------------------------------------ a picture chooses the sound

	// Match a picture to a bed of ambient sounds; the best bed crossfades in. `image`: a file in a
	// folder the server allows (earsight serve --allow-dir; relative names: under the first), or
	// \view: the server's own picture. action.(bed, ok): bed is the best bed's reply (rank 1),
	// [1, divergence, coverage, sound, weight, sound, weight, ...]; when ok is false, [address, reason].
	match { |image, action|
		var old = timeout;
		timeout = max(timeout, 120);  // the first match loads the image classifier
		this.request('/ear/match', [image.asString.standardizePath], { |answer, ok| action.value(answer, ok) });
		timeout = old;
	}

	// Match the view's picture again every `seconds` (1-3600; 0: stop following).
	matchFollow { |seconds, action|
		this.request('/ear/match/follow', [seconds.asFloat], { |answer, ok| action.value(ok, answer) })
	}

	// Fade the bed out and stop following the view.
	matchOff { |action|
		this.request('/ear/match/off', [], { |answer, ok| action.value(ok, answer) })
	}

	// ------------------------------------------------------------ scenes

	// Save every setting (ear, selection, streams, sonification, view, match ...) as the scene
	// `name` in the server's scenes/ folder; answer: [address, name, path].
	saveScene { |name, action|
		this.request('/ear/scene/save', [name.asString], { |answer, ok| action.value(ok, answer) })
	}

	// Recall the scene `name`: levels glide over `fade` seconds, the rest switches at its end;
	// `quantise` \beat or \bar starts it on the next beat or bar (with Link on); action.(ok, answer)
	// once it is in place (a scene with another ear waits for it to load).
	scene { |name, fade = 0, quantise = \now, action|
		var old = timeout;
		timeout = max(timeout, fade + 120);
		this.request('/ear/scene/recall', [name.asString, fade.asFloat, quantise.asString], { |answer, ok| action.value(ok, answer) });
		timeout = old;
	}

	// The saved scenes: action.(names, ok).
	scenes { |action|
		this.request('/ear/scene/list', [], { |answer, ok| action.value(answer, ok) })
	}

	// Delete the saved scene `name`.
	deleteScene { |name, action|
		this.request('/ear/scene/delete', [name.asString], { |answer, ok| action.value(ok, answer) })
	}

	// ------------------------------------------------------------ Ableton Link

	// Join (true) or leave (false) the Link session: the tempo and beat of Live and the other peers.
	// A LinkClock in sclang joins the same session: ~clock = LinkClock.new.latency_(Server.default.latency).
	link { |on = true, action|
		this.request('/ear/link', [if(on == true or: { on == 1 }) { 1 } { 0 }], { |answer, ok| action.value(ok, answer) })
	}

	// Set the session's tempo in BPM (every peer follows).
	tempo { |bpm, action|
		this.request('/ear/link/tempo', [bpm.asFloat], { |answer, ok| action.value(ok, answer) })
	}

	// Beats in a bar, for \bar quantising and the beat stream's phase.
	quantum { |beats, action|
		this.request('/ear/link/quantum', [beats.asFloat], { |answer, ok| action.value(ok, answer) })
	}

	// The session now: action.(dictionary, ok) with \link, \tempo, \beat, \phase, \peers, \quantum.
	linkStatus { |action|
		this.request('/ear/link/status', [], { |answer, ok| action.value(this.class.pairs(answer), ok) })
	}

	// ------------------------------------------------------------ the table

	// The address the server answers a command with (from the table; /ear/done when it has none).
	*replyOf { |address|
		var row = this.commands.detect { |c| c[0].asSymbol == address.asSymbol };
		^(row !? { row[2] } ? "/ear/done").asSymbol
	}

	// A flat [key, value, ...] answer as an IdentityDictionary.
	*pairs { |list|
		var d = IdentityDictionary.new;
		list.pairsDo { |k, v| d[k.asSymbol] = v };
		^d
	}

	// Post every command of the table: address, type tags, answer and what it does.
	*help {
		this.commands.do { |c| "% %  -> %\n    %".format(c[0], c[1], c[2], c[3]).postln };
	}

// patchdoc:begin reference (generated by patches/patchdoc.py: do not edit)
// OSC reference (generated from the server's command table):
//   ~ear.send('/ear/ping')  -> /ear/pong
//       Is the server there? Answers /ear/pong.
//   ~ear.send('/ear/status')  -> /ear/status.reply
//       Key-value pairs: ear, backend, input, sample_rate, block, frame_rate, latency_ms, pitch_latency_ms (from a note's onset reaching the server to the first confident pitch message, on average; 0 when the ear hears no pitch), cpu, xruns, late_blocks, audio_restarts, audio (running, or waiting for JACK when it went away), rss_mb (the server's resident memory), audio_realtime (whether the thread computing the blocks has real-time scheduling, or why not), view_fps (the picture rate now: lower than asked while the machine is behind the audio), dropped, output_underruns (blocks of sonified audio that ran dry), ear_skipped (input samples the ear skipped to stay live), lag_ms, ear_load (busy fraction of the ear worker since the last status, every track's ear), frames, tracks (--inputs), batched (hops run in one batch with another track's), ear.<k> and frames.<k> for each track after the first, subscribers, received (datagrams read), coalesced (setter messages superseded by the same sender's later one before they were applied), inbox_dropped (datagrams dropped: the inbox held 8 MB), inbox_bytes (read, not yet applied), inbox_peak (the most it held), malformed, errors (datagrams or handlers that raised), refused (future messages over the limits), fails_suppressed (/ear/fail answers over 50/s to one address), link (1 while Ableton Link is on: /ear/link), tempo, beat, phase, peers (of the Link session), restarts (supervised threads restarted), restarts.<thread> per thread.
//   ~ear.send('/ear/sync', id)  -> /ear/synced
//       Answers /ear/synced <id> once every earlier command has been handled (SuperCollider's /sync).
//       id (integer)
//   ~ear.send('/ear/notify', [port], [format], [bundle])  -> /ear/done
//       Subscribe the sender (its host, at port) to streams; replies go there too.
//       port (integer, optional): where streams and replies go (default: the sender's port)
//       format (string, optional): list (one message of floats per stream) or flat (/ear/<stream>/<name> per value)
//       bundle (integer, optional): 1: each frame's messages in one timetagged bundle
//   ~ear.send('/ear/notify/off', [port])  -> /ear/done
//       Unsubscribe: no more streams.
//       port (integer, optional): the port given to /ear/notify (default: the sender's)
//   ~ear.send('/ear/stream', name, rate, [port])  -> /ear/done
//       Turn a stream on or off for the sender (subscribing it with defaults if needed). Values arrive at /ear/<name> (list) or /ear/<name>/<value> (flat).
//       name (string): act, layers, pitch, tags, top or embed (per ear frame); level, onset or envelope (per audio block)
//       rate (number): messages per second (capped at the ear's frame rate, or the block rate); 0 turns it off
//       port (integer, optional): the subscriber's port, for one-shot senders like oscsend (default: the sender's)
//   ~ear.send('/ear/select', layer, channels ...)  -> /ear/done
//       Choose the neurons of the act stream (and the highlighted ones in the view).
//       layer (string): a layer of the ear (see /ear/model/info)
//       channels (integer): channel numbers; none: all
//   ~ear.send('/ear/model/list')  -> /ear/model/list.reply
//       The names of the ears.
//   ~ear.send('/ear/model/load', name)  -> /ear/done
//       Switch ears while audio plays; /ear/done once the new ear is listening.
//       name (string): an ear from /ear/model/list
//   ~ear.send('/ear/model/info')  -> /ear/model/info.reply
//       name, sample_rate, frame_rate, latency_ms, labels (count), layers (count), then per layer: name, channels, units.
//   ~ear.send('/ear/top', count, threshold)  -> /ear/done
//       The selection of the top stream (audio-visual hallucinations: the P most probable labels above a threshold).
//       count (integer): at most this many labels (P)
//       threshold (number): 0-1: each at least this probable
//   ~ear.send('/ear/embed/fit', layer, [seconds], [dims])  -> /ear/done
//       Fit the embed stream (PCA of a layer, each dimension scaled to 0-1) on the coming seconds; answers /ear/done /ear/embed/fit <layer> <dims> when fitted.
//       layer (string): the layer to encode
//       seconds (number, optional): how much audio to fit on, from now (default 10)
//       dims (integer, optional): dimensions (default 10, at most 32)
//   ~ear.send('/ear/input', kind, [name], [value])  -> /ear/done
//       What the server listens to. Files (wav, aif, flac, ogg, mp3) loop; they are read only from the folders the server allows (--allow-dir; relative names: under the first).
//       kind (string): demo, device, file, test or silence
//       name (string or number, optional): file path, or test signal: sine, clicks, noise, sweep
//       value (number, optional): test signal parameter: Hz (sine), clicks per second, amplitude (noise), seconds (sweep)
//   ~ear.send('/ear/input/gain', gain)  -> /ear/done
//       Input gain (smoothed).
//       gain (number): 0-16, linear
//   ~ear.send('/ear/output/mix', dry, wet)  -> /ear/done
//       Output levels: dry (the input passed through) and wet (the sonification).
//       dry (number): 0-4
//       wet (number): 0-4
//   ~ear.send('/ear/onset/threshold', db)  -> /ear/done
//       How far (dB) a block's power must rise above the recent level to be an onset.
//       db (number): 0-60, default 9
//   ~ear.send('/ear/view', name)  -> /ear/done
//       What the picture shows: every neuron laid out, a generative image steered by the tags, or the embed features mapped to shapes.
//       name (string): layout, hallucination or features
//   ~ear.send('/ear/view/colormap', name)  -> /ear/done
//       The colour map of the neurons.
//       name (string): magma, viridis, inferno or gray
//   ~ear.send('/ear/view/mode', name)  -> /ear/done
//       How a neuron lights: change (the default: its deviation from its own running level, in its own running spreads; silence is dark, a change lights what changed) or raw (its level, scaled per layer).
//       name (string): change or raw
//   ~ear.send('/ear/view/tau', seconds)  -> /ear/done
//       Time constant of each neuron's running level in change mode (its spread follows ten times slower): short shows onsets, long shows whole passages.
//       seconds (number): 0.05-600; default 1
//   ~ear.send('/ear/view/gain', gain)  -> /ear/done
//       Light per deviation: at gain 1 a neuron 3 spreads off its level (change) or at the top of its layer's range (raw) is fully lit.
//       gain (number): 0.01-100; default 1
//   ~ear.send('/ear/view/decay', seconds)  -> /ear/done
//       Time constant of the light's fade (it rises at once).
//       seconds (number): 0-30; default 0.25
//   ~ear.send('/ear/view/glow', strength)  -> /ear/done
//       How brightly the space between neurons glows with their light.
//       strength (number): 0-4; default 1.5, 0: none
//   ~ear.send('/ear/view/labels', on)  -> /ear/done
//       Layer labels and the legend (colour map and what full light means) over the layout view.
//       on (integer): 1: layer labels and the legend on the picture, 0: off
//   ~ear.send('/ear/view/highlight', layer, channels ...)  -> /ear/done
//       Highlight neurons in the picture only (/ear/select highlights and streams).
//       layer (string)
//       channels (integer): none: clear
//   ~ear.send('/ear/view/shuffle', [seed])  -> /ear/done
//       Redraw which embed feature drives which visual parameter (10! mappings); answers /ear/done /ear/view/shuffle <permutation...>.
//       seed (integer, optional): for a repeatable mapping
//   ~ear.send('/ear/view/snapshot', [name])  -> /ear/done
//       Draw now and save a PNG; answers /ear/done /ear/view/snapshot <path>.
//       name (string, optional): a .png file under the output folder (--out-dir; relative: under its snapshots/)
//   ~ear.send('/ear/view/size', width, height)  -> /ear/done
//       Picture size in pixels.
//       width (integer): 64-3840
//       height (integer): 64-2160
//   ~ear.send('/ear/view/fps', fps)  -> /ear/done
//       Frames per second while someone watches.
//       fps (number): 1-120
//   ~ear.send('/ear/view/layout', seed)  -> /ear/done
//       Lay the neurons out again from another seed (cached per seed; the first time takes seconds).
//       seed (integer): 0 is the shipped layout
//   ~ear.send('/ear/view/track', track)  -> /ear/done
//       Which track's ear the picture shows (its layout and activations, redrawn).
//       track (integer): 1 (default) to the number of inputs (--inputs)
//   ~ear.send('/ear/view/url')  -> /ear/view/url.reply
//       The address of the web page with the live picture.
//   ~ear.send('/ear/sonify', mode, [quantise])  -> /ear/done
//       Make audible what the selected neurons hear: dream (optimise the input so they respond more) or auralise (their feature map run back to a mask on the input's spectrum); mixed into the output (see /ear/output/mix).
//       mode (string): off | dream | auralise
//       quantise (string, optional): now (default), beat or bar: start on the next beat or bar of the Link session (/ear/link; at once while it is off)
//   ~ear.send('/ear/sonify/render', seconds, name, [overwrite])  -> /ear/done
//       Render the sonification of the last seconds to a file; answers /ear/done /ear/sonify/render <path> when written.
//       seconds (number): of the most recent input, up to 10 (the server keeps 10 s)
//       name (string): a .wav or .flac file under the output folder (--out-dir; relative: under its renders/)
//       overwrite (integer, optional): 1: replace an existing file
//   ~ear.send('/ear/sonify/status')  -> /ear/sonify/status.reply
//       Key-value pairs: mode, steps per second, last_rise_spreads (how far the last measured dream raised the selected neurons, in units of their spread on reference audio: the same yardstick for every unit), last_rise (after minus before), last_loudness_db (that dream's output over its input, dB), last_jump (its change's largest sample-to-sample jump over the input's: above 1 a click), last_peak (the last auralisation's mask peak), largest jump at crossfades, steps_live (the dream steps per update now: fewer than asked while the machine cannot keep up, counted in degraded), ...
//   ~ear.send('/ear/sonify/layer', value)  -> /ear/done
//       layer to sonify; empty: the server's selection (/ear/select)
//       value (string): (default '')
//   ~ear.send('/ear/sonify/channel', value)  -> /ear/done
//       channel of that layer; -1: the selection's channels
//       value (integer): -1-65535 (default -1)
//   ~ear.send('/ear/sonify/lr', value)  -> /ear/done
//       dream step size (Adam's, on unit-scale coefficients; wave: x the input's RMS)
//       value (number): 0-2 (default 0.05)
//   ~ear.send('/ear/sonify/steps', value)  -> /ear/done
//       dream: gradient steps per live update
//       value (integer): 1-64 (default 2)
//   ~ear.send('/ear/sonify/iterations', value)  -> /ear/done
//       dream: gradient steps for a render or an offline file
//       value (integer): 1-2000 (default 128)
//   ~ear.send('/ear/sonify/frames', value)  -> /ear/done
//       dream: ear frames evaluated per step, drawn at random from the region; 0: as many as half a second of audio holds (CREPE 8, musicnn 1), more where the iterations would not read each frame about 5 times (a long file); an ear that hears the whole signal at once uses every frame
//       value (integer): 0-512 (default 0)
//   ~ear.send('/ear/sonify/mix', value)  -> /ear/done
//       0 plays the input, 1 the sonification, between: both
//       value (number): 0-1 (default 1.0)
//   ~ear.send('/ear/sonify/strength', value)  -> /ear/done
//       dream: largest change allowed, as RMS of the change over RMS of the input (the output keeps the input's loudness)
//       value (number): 0-8 (default 1.0)
//   ~ear.send('/ear/sonify/param', value)  -> /ear/done
//       dream: what is optimised: change (a change added to the input, as pink-weighted Fourier coefficients), wave (its samples) or spectrum (a gain per STFT bin); auto: change
//       value (string): auto | change | wave | spectrum (default 'auto')
//   ~ear.send('/ear/sonify/window', value)  -> /ear/done
//       live: seconds of input each update looks at
//       value (number): 0.05-4 (default 0.3)
//   ~ear.send('/ear/sonify/chunk', value)  -> /ear/done
//       live: seconds between updates, and of new audio each update plays
//       value (number): 0.02-1 (default 0.2)
//   ~ear.send('/ear/sonify/queue', value)  -> /ear/done
//       live: output queued beyond one chunk, seconds: absorbs slow updates, adds latency
//       value (number): 0-2 (default 0.2)
//   ~ear.send('/ear/sonify/fade', value)  -> /ear/done
//       live: crossfade between consecutive versions, seconds
//       value (number): 0.002-0.2 (default 0.02)
//   ~ear.send('/ear/sonify/region_start', value)  -> /ear/done
//       time region of the objective: start, as a fraction of the window
//       value (number): 0-1 (default 0.0)
//   ~ear.send('/ear/sonify/region_end', value)  -> /ear/done
//       time region of the objective: end, as a fraction of the window
//       value (number): 0-1 (default 1.0)
//   ~ear.send('/ear/sonify/position_start', value)  -> /ear/done
//       frequency/position region of the layer's second axis: start (fraction)
//       value (number): 0-1 (default 0.0)
//   ~ear.send('/ear/sonify/position_end', value)  -> /ear/done
//       frequency/position region of the layer's second axis: end (fraction)
//       value (number): 0-1 (default 1.0)
//   ~ear.send('/ear/sonify/jitter', value)  -> /ear/done
//       dream: largest random time shift per step, seconds
//       value (number): 0-0.1 (default 0.004)
//   ~ear.send('/ear/sonify/time_mask', value)  -> /ear/done
//       dream: fraction of the window silenced at random per step
//       value (number): 0-0.5 (default 0.1)
//   ~ear.send('/ear/sonify/freq_mask', value)  -> /ear/done
//       dream: width of a random frequency band removed per step (fraction of the spectrum)
//       value (number): 0-0.5 (default 0.1)
//   ~ear.send('/ear/sonify/act_penalty', value)  -> /ear/done
//       dream: penalise the layer's other channels (selectivity)
//       value (number): 0-10 (default 0.0)
//   ~ear.send('/ear/sonify/noise_penalty', value)  -> /ear/done
//       dream: penalise the energy of the change
//       value (number): 0-10 (default 0.0)
//   ~ear.send('/ear/sonify/hf_penalty', value)  -> /ear/done
//       dream: penalise the change's high frequencies (its first difference)
//       value (number): 0-10 (default 0.0)
//   ~ear.send('/ear/sonify/stride', value)  -> /ear/done
//       auralise: ear frames between deconvolved frames (1: every frame, 3: a third of the work)
//       value (integer): 1-16 (default 3)
//   ~ear.send('/ear/sonify/dry', value)  -> /ear/done
//       output level of the input passed through
//       value (number): 0-4 (default 1.0)
//   ~ear.send('/ear/sonify/wet', value)  -> /ear/done
//       output level of the sonification
//       value (number): 0-4 (default 1.0)
//   ~ear.send('/ear/match', image, [quantise])  -> /ear/match.reply
//       Match a picture to a bed of up to three ambient sounds and crossfade to it. Answers one /ear/match.reply <rank> <divergence> <coverage> <sound> <weight> ... per bed, best first (the first plays): the KL divergence of the picture's ImageNet classes from the bed's, the share of the picture's classes the library can express, and each sound's share of the bed's power. A newer /ear/match supersedes one still waiting. Quantised, the crossfade starts on the next beat or bar after the match is ready.
//       image (string): an image file (png, jpg, ...) in an allowed folder (--allow-dir), or view: the picture the server draws now
//       quantise (string, optional): now (default), beat or bar: start on the next beat or bar of the Link session (/ear/link; at once while it is off)
//   ~ear.send('/ear/match/follow', seconds)  -> /ear/done
//       Match the view's picture again every so many seconds (its replies go to whoever asked), so the ear's own picture chooses what it hears next; each change is a crossfade.
//       seconds (number): 1-3600; 0: off
//   ~ear.send('/ear/match/off')  -> /ear/done
//       Fade the bed out and stop following the view.
//   ~ear.send('/ear/match/library', folder)  -> /ear/done
//       The sounds to match from: every audio file with a sidecar .txt naming the ImageNet classes it evokes (class names, #index or #first-last, or words of class names; a number after an entry weighs it). Answers /ear/done /ear/match/library <folder> <sounds>. default: the synthesised library.
//       folder (string): a folder in an allowed folder (--allow-dir), or default
//   ~ear.send('/ear/match/level', level)  -> /ear/done
//       The bed's gain in the output (beside /ear/output/mix's dry and wet; the bed plays at -26 dBFS RMS at 1).
//       level (number): 0-4, default 1
//   ~ear.send('/ear/match/input', on)  -> /ear/done
//       Whether the bed is mixed into what the ear listens to (then it reaches the output as dry input).
//       on (integer): 1: the ear hears the bed too; 0 (default): only the output has it
//   ~ear.send('/ear/match/fade', seconds)  -> /ear/done
//       Length of the crossfade from one bed to the next (equal power: the level does not dip).
//       seconds (number): 0.05-60, default 3
//   ~ear.send('/ear/match/status')  -> /ear/match/status.reply
//       Key-value pairs: library, sounds, bed (the one playing), level, input, fade, follow, matches, changes, superseded, failed, and the last match's read_ms, classify_ms, match_ms, mix_ms.
//   ~ear.send('/ear/scene/save', name)  -> /ear/done
//       Save every setting a command can set (the table marks them *scene*), the subscribers and their streams, the fitted embedding and the bed playing, as readable JSON under the output folder's scenes/ (written whole or not at all); answers /ear/done /ear/scene/save <name> <path>. Saving again replaces it.
//       name (string): 1-64 letters, digits, spaces, '.', '-' or '_'
//   ~ear.send('/ear/scene/recall', name, [fade], [quantise])  -> /ear/done
//       Recall a scene: the settings marked *scene: glide* crossfade over the fade, the rest switch at its end (a new ear first), then /ear/done /ear/scene/recall <name> [services not running, whose settings were skipped]. The file is checked before anything changes: a corrupt one, or a setting refused on the way (what the recall had changed is put back), answers /ear/fail with the field at fault. A later recall supersedes one still fading (or waiting for its beat).
//       name (string): a saved scene
//       fade (number, optional): seconds, 0-60 (default 0: at once)
//       quantise (string, optional): now (default), beat or bar: start on the next beat or bar of the Link session (/ear/link; at once while it is off)
//   ~ear.send('/ear/scene/list')  -> /ear/scene/list.reply
//       The names of the saved scenes.
//   ~ear.send('/ear/scene/delete', name)  -> /ear/done
//       Delete a saved scene.
//       name (string): a saved scene
//   ~ear.send('/ear/scene/show', [name])  -> /ear/scene/show.reply
//       One /ear/scene/show.reply per setting (<address> <arguments...>), per subscriber (subscriber <host> <port> <format> <bundle> <stream> <rate> ...), then embedding <layer> <dims> and bed <sound> <weight> ... (or none); then /ear/done /ear/scene/show <lines>.
//       name (string, optional): a saved scene (default: the settings now)
//   ~ear.send('/ear/link', on)  -> /ear/done
//       Ableton Link (off until asked for): share tempo and beat with Live, LinkClock and other peers. Then the beat stream runs, /ear/status has tempo, beat, phase and peers, and scene recalls, matches and the sonify mode can wait for the next beat or bar.
//       on (integer): 1: join the Link session on the network, 0: leave it
//   ~ear.send('/ear/link/quantum', beats)  -> /ear/done
//       Beats in a bar: what 'bar' waits for, and the beat stream's phase.
//       beats (number): 1-64, default 4
//   ~ear.send('/ear/link/tempo', bpm)  -> /ear/done
//       Set the session's tempo (every peer follows; a peer's change reaches the server the same way).
//       bpm (number): 20-999
//   ~ear.send('/ear/link/status')  -> /ear/link/status.reply
//       Key-value pairs: link (1 while on), tempo, beat, phase, peers, quantum.
// Streams (Earsight:stream, values with the default ear crepe):
//   \act: conv6_0, conv6_1, conv6_2, conv6_3 -- mean activation of each selected channel (see /ear/select)
//   \layers: conv1, conv2, conv3, conv4, conv5, conv6, pitch -- energy (RMS) of every layer
//   \pitch: hz, confidence -- pitch in Hz and its confidence (0-1)
//   \level: rms, peak -- input RMS and peak (linear) since the last message; per audio block, sent the moment the block is computed
//   \onset: strength, age -- an attack: strength (dB above the recent level) and age (s from the attack to the send); sent when one happens, the rate caps how often (threshold: /ear/onset/threshold; bundles carry the attack's time)
//   \envelope: value -- the input's peak envelope (attack 5 ms, release 150 ms), per audio block
//   \tags: (not with the default ear) -- probability of every label
//   \top: (not with the default ear) -- the most probable labels (see /ear/top): probability where chosen, else 0
//   \embed: e0, e1, e2, e3, e4, e5, ... (32 values) -- low-dimensional code of a layer, 0-1 (see /ear/embed/fit)
//   \beat: beat, phase, tempo -- the Link session's beat (counting from when the session began), phase in the bar (0 to the quantum) and tempo (BPM); up to 100 a second while /ear/link is on

	// [address, typetag, reply, doc]; typetag: n number, i integer, s string, a either; ? optional, * repeated
	*commands {
		^[
			["/ear/ping", "", "/ear/pong", "Is the server there? Answers /ear/pong."],
			["/ear/status", "", "/ear/status.reply", "Key-value pairs: ear, backend, input, sample_rate, block, frame_rate, latency_ms, pitch_latency_ms (from a note's onset reaching the server to the first confident pitch message, on average; 0 when the ear hears no pitch), cpu, xruns, late_blocks, audio_restarts, audio (running, or waiting for JACK when it went away), rss_mb (the server's resident memory), audio_realtime (whether the thread computing the blocks has real-time scheduling, or why not), view_fps (the picture rate now: lower than asked while the machine is behind the audio), dropped, output_underruns (blocks of sonified audio that ran dry), ear_skipped (input samples the ear skipped to stay live), lag_ms, ear_load (busy fraction of the ear worker since the last status, every track's ear), frames, tracks (--inputs), batched (hops run in one batch with another track's), ear.<k> and frames.<k> for each track after the first, subscribers, received (datagrams read), coalesced (setter messages superseded by the same sender's later one before they were applied), inbox_dropped (datagrams dropped: the inbox held 8 MB), inbox_bytes (read, not yet applied), inbox_peak (the most it held), malformed, errors (datagrams or handlers that raised), refused (future messages over the limits), fails_suppressed (/ear/fail answers over 50/s to one address), link (1 while Ableton Link is on: /ear/link), tempo, beat, phase, peers (of the Link session), restarts (supervised threads restarted), restarts.<thread> per thread."],
			["/ear/sync", "i", "/ear/synced", "Answers /ear/synced <id> once every earlier command has been handled (SuperCollider's /sync)."],
			["/ear/notify", "i?s?i?", "/ear/done", "Subscribe the sender (its host, at port) to streams; replies go there too."],
			["/ear/notify/off", "i?", "/ear/done", "Unsubscribe: no more streams."],
			["/ear/stream", "sni?", "/ear/done", "Turn a stream on or off for the sender (subscribing it with defaults if needed). Values arrive at /ear/<name> (list) or /ear/<name>/<value> (flat)."],
			["/ear/select", "si*", "/ear/done", "Choose the neurons of the act stream (and the highlighted ones in the view)."],
			["/ear/model/list", "", "/ear/model/list.reply", "The names of the ears."],
			["/ear/model/load", "s", "/ear/done", "Switch ears while audio plays; /ear/done once the new ear is listening."],
			["/ear/model/info", "", "/ear/model/info.reply", "name, sample_rate, frame_rate, latency_ms, labels (count), layers (count), then per layer: name, channels, units."],
			["/ear/top", "in", "/ear/done", "The selection of the top stream (audio-visual hallucinations: the P most probable labels above a threshold)."],
			["/ear/embed/fit", "sn?i?", "/ear/done", "Fit the embed stream (PCA of a layer, each dimension scaled to 0-1) on the coming seconds; answers /ear/done /ear/embed/fit <layer> <dims> when fitted."],
			["/ear/input", "sa?n?", "/ear/done", "What the server listens to. Files (wav, aif, flac, ogg, mp3) loop; they are read only from the folders the server allows (--allow-dir; relative names: under the first)."],
			["/ear/input/gain", "n", "/ear/done", "Input gain (smoothed)."],
			["/ear/output/mix", "nn", "/ear/done", "Output levels: dry (the input passed through) and wet (the sonification)."],
			["/ear/onset/threshold", "n", "/ear/done", "How far (dB) a block's power must rise above the recent level to be an onset."],
			["/ear/view", "s", "/ear/done", "What the picture shows: every neuron laid out, a generative image steered by the tags, or the embed features mapped to shapes."],
			["/ear/view/colormap", "s", "/ear/done", "The colour map of the neurons."],
			["/ear/view/mode", "s", "/ear/done", "How a neuron lights: change (the default: its deviation from its own running level, in its own running spreads; silence is dark, a change lights what changed) or raw (its level, scaled per layer)."],
			["/ear/view/tau", "n", "/ear/done", "Time constant of each neuron's running level in change mode (its spread follows ten times slower): short shows onsets, long shows whole passages."],
			["/ear/view/gain", "n", "/ear/done", "Light per deviation: at gain 1 a neuron 3 spreads off its level (change) or at the top of its layer's range (raw) is fully lit."],
			["/ear/view/decay", "n", "/ear/done", "Time constant of the light's fade (it rises at once)."],
			["/ear/view/glow", "n", "/ear/done", "How brightly the space between neurons glows with their light."],
			["/ear/view/labels", "i", "/ear/done", "Layer labels and the legend (colour map and what full light means) over the layout view."],
			["/ear/view/highlight", "si*", "/ear/done", "Highlight neurons in the picture only (/ear/select highlights and streams)."],
			["/ear/view/shuffle", "i?", "/ear/done", "Redraw which embed feature drives which visual parameter (10! mappings); answers /ear/done /ear/view/shuffle <permutation...>."],
			["/ear/view/snapshot", "s?", "/ear/done", "Draw now and save a PNG; answers /ear/done /ear/view/snapshot <path>."],
			["/ear/view/size", "ii", "/ear/done", "Picture size in pixels."],
			["/ear/view/fps", "n", "/ear/done", "Frames per second while someone watches."],
			["/ear/view/layout", "i", "/ear/done", "Lay the neurons out again from another seed (cached per seed; the first time takes seconds)."],
			["/ear/view/track", "i", "/ear/done", "Which track's ear the picture shows (its layout and activations, redrawn)."],
			["/ear/view/url", "", "/ear/view/url.reply", "The address of the web page with the live picture."],
			["/ear/sonify", "ss?", "/ear/done", "Make audible what the selected neurons hear: dream (optimise the input so they respond more) or auralise (their feature map run back to a mask on the input's spectrum); mixed into the output (see /ear/output/mix)."],
			["/ear/sonify/render", "nsi?", "/ear/done", "Render the sonification of the last seconds to a file; answers /ear/done /ear/sonify/render <path> when written."],
			["/ear/sonify/status", "", "/ear/sonify/status.reply", "Key-value pairs: mode, steps per second, last_rise_spreads (how far the last measured dream raised the selected neurons, in units of their spread on reference audio: the same yardstick for every unit), last_rise (after minus before), last_loudness_db (that dream's output over its input, dB), last_jump (its change's largest sample-to-sample jump over the input's: above 1 a click), last_peak (the last auralisation's mask peak), largest jump at crossfades, steps_live (the dream steps per update now: fewer than asked while the machine cannot keep up, counted in degraded), ..."],
			["/ear/sonify/layer", "s", "/ear/done", "layer to sonify; empty: the server's selection (/ear/select)"],
			["/ear/sonify/channel", "i", "/ear/done", "channel of that layer; -1: the selection's channels"],
			["/ear/sonify/lr", "n", "/ear/done", "dream step size (Adam's, on unit-scale coefficients; wave: x the input's RMS)"],
			["/ear/sonify/steps", "i", "/ear/done", "dream: gradient steps per live update"],
			["/ear/sonify/iterations", "i", "/ear/done", "dream: gradient steps for a render or an offline file"],
			["/ear/sonify/frames", "i", "/ear/done", "dream: ear frames evaluated per step, drawn at random from the region; 0: as many as half a second of audio holds (CREPE 8, musicnn 1), more where the iterations would not read each frame about 5 times (a long file); an ear that hears the whole signal at once uses every frame"],
			["/ear/sonify/mix", "n", "/ear/done", "0 plays the input, 1 the sonification, between: both"],
			["/ear/sonify/strength", "n", "/ear/done", "dream: largest change allowed, as RMS of the change over RMS of the input (the output keeps the input's loudness)"],
			["/ear/sonify/param", "s", "/ear/done", "dream: what is optimised: change (a change added to the input, as pink-weighted Fourier coefficients), wave (its samples) or spectrum (a gain per STFT bin); auto: change"],
			["/ear/sonify/window", "n", "/ear/done", "live: seconds of input each update looks at"],
			["/ear/sonify/chunk", "n", "/ear/done", "live: seconds between updates, and of new audio each update plays"],
			["/ear/sonify/queue", "n", "/ear/done", "live: output queued beyond one chunk, seconds: absorbs slow updates, adds latency"],
			["/ear/sonify/fade", "n", "/ear/done", "live: crossfade between consecutive versions, seconds"],
			["/ear/sonify/region_start", "n", "/ear/done", "time region of the objective: start, as a fraction of the window"],
			["/ear/sonify/region_end", "n", "/ear/done", "time region of the objective: end, as a fraction of the window"],
			["/ear/sonify/position_start", "n", "/ear/done", "frequency/position region of the layer's second axis: start (fraction)"],
			["/ear/sonify/position_end", "n", "/ear/done", "frequency/position region of the layer's second axis: end (fraction)"],
			["/ear/sonify/jitter", "n", "/ear/done", "dream: largest random time shift per step, seconds"],
			["/ear/sonify/time_mask", "n", "/ear/done", "dream: fraction of the window silenced at random per step"],
			["/ear/sonify/freq_mask", "n", "/ear/done", "dream: width of a random frequency band removed per step (fraction of the spectrum)"],
			["/ear/sonify/act_penalty", "n", "/ear/done", "dream: penalise the layer's other channels (selectivity)"],
			["/ear/sonify/noise_penalty", "n", "/ear/done", "dream: penalise the energy of the change"],
			["/ear/sonify/hf_penalty", "n", "/ear/done", "dream: penalise the change's high frequencies (its first difference)"],
			["/ear/sonify/stride", "i", "/ear/done", "auralise: ear frames between deconvolved frames (1: every frame, 3: a third of the work)"],
			["/ear/sonify/dry", "n", "/ear/done", "output level of the input passed through"],
			["/ear/sonify/wet", "n", "/ear/done", "output level of the sonification"],
			["/ear/match", "ss?", "/ear/match.reply", "Match a picture to a bed of up to three ambient sounds and crossfade to it. Answers one /ear/match.reply <rank> <divergence> <coverage> <sound> <weight> ... per bed, best first (the first plays): the KL divergence of the picture's ImageNet classes from the bed's, the share of the picture's classes the library can express, and each sound's share of the bed's power. A newer /ear/match supersedes one still waiting. Quantised, the crossfade starts on the next beat or bar after the match is ready."],
			["/ear/match/follow", "n", "/ear/done", "Match the view's picture again every so many seconds (its replies go to whoever asked), so the ear's own picture chooses what it hears next; each change is a crossfade."],
			["/ear/match/off", "", "/ear/done", "Fade the bed out and stop following the view."],
			["/ear/match/library", "s", "/ear/done", "The sounds to match from: every audio file with a sidecar .txt naming the ImageNet classes it evokes (class names, #index or #first-last, or words of class names; a number after an entry weighs it). Answers /ear/done /ear/match/library <folder> <sounds>. default: the synthesised library."],
			["/ear/match/level", "n", "/ear/done", "The bed's gain in the output (beside /ear/output/mix's dry and wet; the bed plays at -26 dBFS RMS at 1)."],
			["/ear/match/input", "i", "/ear/done", "Whether the bed is mixed into what the ear listens to (then it reaches the output as dry input)."],
			["/ear/match/fade", "n", "/ear/done", "Length of the crossfade from one bed to the next (equal power: the level does not dip)."],
			["/ear/match/status", "", "/ear/match/status.reply", "Key-value pairs: library, sounds, bed (the one playing), level, input, fade, follow, matches, changes, superseded, failed, and the last match's read_ms, classify_ms, match_ms, mix_ms."],
			["/ear/scene/save", "s", "/ear/done", "Save every setting a command can set (the table marks them *scene*), the subscribers and their streams, the fitted embedding and the bed playing, as readable JSON under the output folder's scenes/ (written whole or not at all); answers /ear/done /ear/scene/save <name> <path>. Saving again replaces it."],
			["/ear/scene/recall", "sn?s?", "/ear/done", "Recall a scene: the settings marked *scene: glide* crossfade over the fade, the rest switch at its end (a new ear first), then /ear/done /ear/scene/recall <name> [services not running, whose settings were skipped]. The file is checked before anything changes: a corrupt one, or a setting refused on the way (what the recall had changed is put back), answers /ear/fail with the field at fault. A later recall supersedes one still fading (or waiting for its beat)."],
			["/ear/scene/list", "", "/ear/scene/list.reply", "The names of the saved scenes."],
			["/ear/scene/delete", "s", "/ear/done", "Delete a saved scene."],
			["/ear/scene/show", "s?", "/ear/scene/show.reply", "One /ear/scene/show.reply per setting (<address> <arguments...>), per subscriber (subscriber <host> <port> <format> <bundle> <stream> <rate> ...), then embedding <layer> <dims> and bed <sound> <weight> ... (or none); then /ear/done /ear/scene/show <lines>."],
			["/ear/link", "i", "/ear/done", "Ableton Link (off until asked for): share tempo and beat with Live, LinkClock and other peers. Then the beat stream runs, /ear/status has tempo, beat, phase and peers, and scene recalls, matches and the sonify mode can wait for the next beat or bar."],
			["/ear/link/quantum", "n", "/ear/done", "Beats in a bar: what 'bar' waits for, and the beat stream's phase."],
			["/ear/link/tempo", "n", "/ear/done", "Set the session's tempo (every peer follows; a peer's change reaches the server the same way)."],
			["/ear/link/status", "", "/ear/link/status.reply", "Key-value pairs: link (1 while on), tempo, beat, phase, peers, quantum."],
		]
	}

	// the commands each track has of its own (/ear/<track>/... reaches them)
	*trackCommands {
		^["/ear/notify", "/ear/notify/off", "/ear/stream", "/ear/select", "/ear/model/list", "/ear/model/load", "/ear/model/info", "/ear/top", "/ear/embed/fit"]
	}

	// stream name -> value names with the default ear (crepe); empty: depends on the ear
	*streams {
		^(
			act: [],
			layers: [],
			pitch: ["hz", "confidence"],
			level: ["rms", "peak"],
			onset: [],
			envelope: [],
			tags: [],
			top: [],
			embed: ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10", "e11", "e12", "e13", "e14", "e15", "e16", "e17", "e18", "e19", "e20", "e21", "e22", "e23", "e24", "e25", "e26", "e27", "e28", "e29", "e30", "e31"],
			beat: [],
		)
	}
// patchdoc:end reference
}
